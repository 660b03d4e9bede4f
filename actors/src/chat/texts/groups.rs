//! What the bot says in groups: automatic transcription and who pays for it.

use crate::chat::Lang;

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

pub fn transcribe_usage(lang: Lang) -> &'static str {
    lang.pick(
        "Отправьте /transcribe ответом на голосовое, аудио или видеосообщение — расшифрую его здесь за ваши монеты.",
        "Send /transcribe as a reply to a voice message, audio or video note, and I'll transcribe it here, paid by you.",
    )
}

pub fn transcribe_in_private(lang: Lang) -> &'static str {
    lang.pick(
        "Здесь просто пришлите или перешлите мне запись. /transcribe — для групп: ответом на голосовое.",
        "Here, just send or forward me the recording. /transcribe is for groups: as a reply to a voice message.",
    )
}

/// Who asked cannot pay: said in the group without their balance.
pub fn on_demand_top_up(lang: Lang, bot_username: &str) -> String {
    match lang {
        Lang::Ru => format!("Недостаточно монет. Пополнить: https://t.me/{bot_username}?start=topup"),
        Lang::En => format!("Not enough coins. Top up: https://t.me/{bot_username}?start=topup"),
    }
}
