//! What the bot says about the user's data: what is kept, and deleting it.

use crate::chat::Lang;

pub fn privacy(lang: Lang) -> &'static str {
    lang.pick(
        "🔒 Ваши данные\n\nЧто хранится:\n• Telegram id, имя и язык; настройки;\n• записи (аудио), присланные ссылки и расшифровки — пока вы их не удалите;\n• фото для аватаров, обученные аватары и созданные картинки — пока вы их не удалите;\n• полученные ботом сообщения — 7 дней, ответы FAL — 30 дней;\n• история монет и платежей — как финансовые записи.\n\nЗаписи и тексты отправляются в OpenAI для расшифровки, фото и описания — в FAL для генерации.\n\n/deletemydata удаляет всё это (файлы в хранилище тоже), кроме записей о монетах и платежах: они остаются без содержимого.",
        "🔒 Your data\n\nWhat is kept:\n• your Telegram id, name and language; your settings;\n• recordings (audio), the links you send and transcripts — until you delete them;\n• avatar photos, trained avatars and generated images — until you delete them;\n• messages the bot receives — 7 days, FAL's answers — 30 days;\n• your coin and payment history — as financial records.\n\nRecordings go to OpenAI to be transcribed; photos and prompts go to FAL to make images.\n\n/deletemydata deletes all of it (stored files included) except the coin and payment records, which stay without their content.",
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
