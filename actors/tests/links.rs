//! Recordings from a link, with real yt-dlp, ffmpeg, PostgreSQL, Redis and
//! S3, and the linked sites served on loopback (the test profile's one
//! allowed private range): the price told before any charge, nothing
//! downloaded first where the site states the length, the guard refusing
//! private addresses before and after a redirect, and clear words and a
//! refund when a link gives nothing.

mod common;

use std::time::Duration;

use aisha_actors::jobs::NewJob;
use aisha_actors::ledger;
use aisha_actors::settings::ByteSize;
use aisha_testkit::audio::{hls_of, speech_file, tone_with_pauses};
use aisha_testkit::eventually;
use aisha_testkit::media_site::{gzip_bomb, MediaSite};
use aisha_testkit::openai::Answer;
use common::chat_rig::{rig, workers, Rig, WAIT};

const TOKEN: &str = "9393:LINKS-token-xyz";
const USER: i64 = 4201;

async fn links_rig(name: &str) -> (Rig, MediaSite) {
    let site = MediaSite::start(speech_file("A recording from a link. It has a few words.", "mp3")).await;
    (links_rig_with(name, |_| {}).await, site)
}

async fn links_rig_with(name: &str, tweak: impl FnOnce(&mut aisha_actors::settings::Settings)) -> Rig {
    rig(name, TOKEN, USER, |s| {
        s.links.enabled = true;
        s.links.allow_ranges = vec!["127.0.0.0/8".into()];
        tweak(s);
    })
    .await
}

/// The offer of a link's price, once the link was read.
async fn offer(rig: &Rig) -> serde_json::Value {
    eventually("the price", WAIT, || rig.last_message_starting(USER, "🔗 “").is_some()).await;
    rig.last_message_starting(USER, "🔗 “").unwrap()
}

fn confirm_data(offer: &serde_json::Value) -> String {
    offer["reply_markup"]["inline_keyboard"][0][0]["callback_data"].as_str().unwrap().to_owned()
}

/// The newest message to the user, once one contains `words`.
async fn told(rig: &Rig, words: &str) -> String {
    eventually(words, WAIT, || rig.telegram.sent_texts(USER).iter().any(|t| t.contains(words))).await;
    rig.telegram.sent_texts(USER).into_iter().find(|t| t.contains(words)).unwrap()
}

#[tokio::test]
async fn a_link_to_a_file_is_fetched_measured_and_priced_before_any_charge() {
    let (rig, site) = links_rig("links_file").await;
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_text(USER, "en", &format!("please: {}", site.url("/episode.mp3")));
    told(&rig, "Looking at the link").await;
    let offer = offer(&rig).await;
    assert!(offer["text"].as_str().unwrap().contains("1 min. Transcribing it costs 1 coins"), "{offer}");
    assert_eq!(rig.balance().await, 100, "nothing charged before the yes");
    let fetched = site.requested().len();
    assert!(site.requested().contains(&"/episode.mp3".to_owned()), "no stated length: fetched to measure");

    rig.telegram.push_callback(USER, "en", &confirm_data(&offer), 2);
    eventually("transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    assert_eq!(rig.balance().await, 99);
    assert_eq!(site.requested().len(), fetched, "the audio fetched to measure it is the one transcribed");
    rig.telegram.push_callback(USER, "en", &confirm_data(&offer), 3);
    rig.all_handled().await;
    assert_eq!(rig.openai.transcriptions().len(), 1, "a second press finds the first");
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_page_that_states_the_length_is_priced_without_downloading() {
    let (rig, site) = links_rig("links_stated").await;
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_text(USER, "en", &site.url("/stated.html"));
    let offer = offer(&rig).await;
    assert!(offer["text"].as_str().unwrap().contains("“Podcast 7”, 2 min. Transcribing it costs 2 coins"), "{offer}");
    assert!(!site.requested().contains(&"/episode.mp3".to_owned()), "nothing downloaded before the confirm");
    assert_eq!(rig.balance().await, 100);

    rig.openai.script_transcriptions([Answer::Delay(Duration::from_secs(2))]);
    rig.telegram.push_callback(USER, "en", &confirm_data(&offer), 2);
    eventually("the recording at the API", WAIT, || rig.openai.transcription_arrivals() == 1).await;
    // Kept before it was settled: a retry transcribes what was paid for,
    // whatever the site serves by then.
    let kept = rig.scalar("SELECT count(*) FROM transcripts WHERE audio_key IS NOT NULL").await;
    assert_eq!(kept, 1, "the link's audio is kept before the API hears it");
    eventually("transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    assert!(site.requested().contains(&"/episode.mp3".to_owned()));
    // Charged 2 on the stated 65 s, then settled on the few seconds measured.
    told(&rig, "refunded").await;
    assert_eq!(rig.balance().await, 99);
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_podcast_page_with_an_audio_tag_is_transcribed() {
    let (rig, site) = links_rig("links_page").await;
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_text(USER, "en", &site.url("/podcast.html"));
    let offer = offer(&rig).await;
    assert!(offer["text"].as_str().unwrap().contains("Episode 12"), "{offer}");
    rig.telegram.push_callback(USER, "en", &confirm_data(&offer), 2);
    eventually("transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    assert_eq!(rig.balance().await, 99);
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn links_to_private_addresses_are_refused_before_and_after_a_redirect() {
    let (rig, site) = links_rig("links_private").await;
    let pool = workers(&rig.services, "w1").await;
    let forged = [
        "http://10.0.0.1/admin",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:192.168.0.1]/",
        "http://[2002:a9fe:a9fe::1]/", // 6to4 of the metadata address
        "http://[::a00:1]/",           // IPv4-compatible 10.0.0.1
    ];
    for link in forged {
        rig.telegram.push_text(USER, "en", link);
    }
    eventually("five refusals", WAIT, || {
        rig.telegram.sent_texts(USER).iter().filter(|t| t.contains("does not lead to a public website")).count() == 5
    })
    .await;
    assert_eq!(rig.scalar("SELECT count(*) FROM links").await, 0, "refused before anything was queued");

    rig.telegram.push_text(USER, "en", &site.url("/moved"));
    eventually("refused after the redirect", WAIT, || {
        rig.telegram.sent_texts(USER).iter().filter(|t| t.contains("does not lead to a public website")).count() == 6
    })
    .await;
    assert_eq!(site.requested(), ["/moved"], "the redirect was followed no further");
    assert!(rig.openai.transcriptions().is_empty());
    assert_eq!(rig.balance().await, 100);
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn free_readings_have_their_own_limits_told_when_hit() {
    let rig = links_rig_with("links_limits", |s| {
        s.links.probes_in_flight = 1;
        s.links.probes_per_hour = 2;
    })
    .await;
    let site = MediaSite::start(speech_file("A recording from a link.", "mp3")).await;
    // No worker yet: the first link stays in reading.
    rig.telegram.push_text(USER, "en", &site.url("/stated.html"));
    told(&rig, "Looking at the link").await;
    rig.telegram.push_text(USER, "en", &site.url("/podcast.html"));
    told(&rig, "I'm already reading 1 of your links").await;
    assert_eq!(rig.scalar("SELECT count(*) FROM jobs WHERE kind = 'link.probe'").await, 1);

    let pool = workers(&rig.services, "w1").await;
    offer(&rig).await;
    rig.telegram.push_text(USER, "en", &site.url("/podcast.html"));
    eventually("the second offer", WAIT, || rig.telegram.sent_texts(USER).iter().any(|t| t.contains("Episode 12")))
        .await;
    rig.telegram.push_text(USER, "en", &site.url("/episode.mp3"));
    let used = told(&rig, "I read up to 2 links an hour for free").await;
    assert!(used.contains("Send this one again in"), "{used}");
    assert_eq!(rig.scalar("SELECT count(*) FROM jobs WHERE kind = 'link.probe'").await, 2, "the third not queued");
    assert_eq!(rig.balance().await, 100);
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_file_larger_than_a_free_reading_takes_is_told_and_not_kept() {
    let rig = links_rig_with("links_probe_cap", |s| s.links.probe_max_bytes = ByteSize::mib(1)).await;
    // About 1.8 MB of Opus: 20 minutes, and no stated length.
    let site = MediaSite::start(tone_with_pauses(1200, 4, 1)).await;
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_text(USER, "en", &site.url("/episode.mp3"));
    let told = told(&rig, "the file is over 1 MB").await;
    assert!(told.contains("nothing was charged"), "{told}");
    assert_eq!(rig.scalar("SELECT count(*) FROM links WHERE duration_seconds IS NOT NULL").await, 0);
    let user_id = rig.scalar(&format!("SELECT id FROM users WHERE telegram_id = {USER}")).await;
    let kept = rig.services.blob.delete_prefix(&format!("audio/{user_id}/")).await.unwrap();
    assert_eq!(kept, 0, "nothing of it kept");
    assert_eq!(rig.balance().await, 100);
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

/// Writes `text` to `path`, runnable.
fn executable(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A stand-in for yt-dlp that puts an ffmpeg and an ffprobe of the test's
/// own first on yt-dlp's PATH, each noting in `log` that it ran, then being
/// the real one: whether yt-dlp runs either behind the guard's back.
fn ytdlp_watching_ffmpeg(dir: &std::path::Path, log: &std::path::Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    for tool in ["ffmpeg", "ffprobe"] {
        let real = String::from_utf8(std::process::Command::new("which").arg(tool).output().unwrap().stdout).unwrap();
        executable(
            &dir.join(tool),
            &format!("#!/bin/sh\necho {tool} >> {}\nexec {} \"$@\"\n", log.display(), real.trim()),
        );
    }
    let wrapper = dir.join("watched-yt-dlp");
    executable(&wrapper, &format!("#!/bin/sh\nPATH={}:$PATH exec yt-dlp \"$@\"\n", dir.display()));
    wrapper.to_string_lossy().into_owned()
}

#[tokio::test]
async fn an_hls_stream_is_fetched_by_yt_dlp_alone_through_the_guard() {
    let dir = std::env::temp_dir().join(format!("aisha-links-hls-{}", std::process::id()));
    let log = dir.join("ran.log");
    let ytdlp = ytdlp_watching_ffmpeg(&dir, &log);
    let rig = links_rig_with("links_hls", |s| s.links.ytdlp = ytdlp).await;
    let site = MediaSite::start(speech_file("A recording from a link.", "mp3")).await;
    for (name, bytes) in hls_of(&speech_file("A stream in pieces, as radio serves it.", "wav")) {
        let kind = if name.ends_with(".m3u8") { "application/vnd.apple.mpegurl" } else { "video/mp2t" };
        site.serve(&format!("/hls/{name}"), kind, bytes);
    }
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_text(USER, "en", &site.url("/hls/index.m3u8"));
    let offer = offer(&rig).await;
    rig.telegram.push_callback(USER, "en", &confirm_data(&offer), 2);
    eventually("transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    assert!(site.requested().iter().any(|p| p.starts_with("/hls/seg")), "its segments fetched");
    let ran = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(ran, "", "yt-dlp ran ffmpeg tools of its own");
    let _ = std::fs::remove_dir_all(&dir);
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_page_that_inflates_to_gigabytes_fails_its_reading_once_not_the_worker() {
    let dir = std::env::temp_dir().join(format!("aisha-links-bomb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let peak = dir.join("peak");
    // yt-dlp under a wrapper that notes the most memory it held.
    let wrapper = dir.join("measured-yt-dlp");
    let script = format!(
        "#!/usr/bin/env python3\nimport resource, subprocess, sys\nr = subprocess.run(['yt-dlp'] + sys.argv[1:])\n\
         open('{}', 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\nsys.exit(r.returncode)\n",
        peak.display()
    );
    executable(&wrapper, &script);
    let rig = links_rig_with("links_bomb", |s| s.links.ytdlp = wrapper.to_string_lossy().into_owned()).await;
    let site = MediaSite::start(speech_file("unused", "mp3")).await;
    let bomb = gzip_bomb(3 << 30);
    let wire = bomb.len();
    site.serve_with("/bomb.html", &[("content-type", "text/html"), ("content-encoding", "gzip, gzip")], bomb);
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_text(USER, "en", &site.url("/bomb.html"));
    told(&rig, "The page at that link is too large to read.").await;

    let attempts = rig.scalar("SELECT max(attempts)::bigint FROM jobs WHERE kind = 'link.probe'").await;
    assert_eq!(attempts, 1, "not tried again: it would inflate again");
    let peak_kib: u64 = std::fs::read_to_string(&peak).unwrap().trim().parse().unwrap();
    assert!(peak_kib < 1024 * 1024, "yt-dlp held {peak_kib} KiB, over its 1 GiB address space");
    println!(
        "links figure: a {wire}-byte page inflating to 3 GiB held yt-dlp to {} MiB (6.3 GiB without the limit)",
        peak_kib / 1024
    );
    let _ = std::fs::remove_dir_all(&dir);
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_link_job_queued_by_the_version_before_is_transcribed() {
    let (rig, site) = links_rig("links_old_row").await;
    let user_id = rig.scalar(&format!("SELECT id FROM users WHERE telegram_id = {USER}")).await;
    let url = site.url("/episode.mp3");
    let link_id = rig.services.db.add_link(user_id, USER, &url).await.unwrap();
    // As the version before wrote it: flat, with placeholders where a Telegram file goes.
    let payload = serde_json::json!({
        "chat_id": USER, "message_id": 0, "media": "link", "file_id": "", "file_unique_id": format!("link:{link_id}"),
        "file_size": null, "duration": 5, "mime_type": null, "file_name": "Queued before", "language": "en",
        "spoken_language": "auto", "reply_to": null, "payer_chat_id": null, "sender_telegram_id": null,
        "speakers": false, "link": { "link_id": link_id, "url": url, "audio_key": null }
    });
    let job = NewJob { cost: 1, chat_id: Some(USER), ..NewJob::new("link.transcribe", "before:1", payload) };
    ledger::charge_and_enqueue(&rig.services.db, user_id, job).await.unwrap();
    let pool = workers(&rig.services, "w1").await;
    eventually("transcript", WAIT, || rig.transcripts_sent().len() == 1).await;
    assert_eq!(rig.balance().await, 99);
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_page_with_no_media_is_told_and_nothing_charged() {
    let (rig, site) = links_rig("links_nothing").await;
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_text(USER, "en", &site.url("/nothing.html"));
    told(&rig, "There is no audio or video at that link.").await;
    assert_eq!(rig.balance().await, 100);
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn a_recording_gone_after_the_confirm_is_told_and_refunded() {
    let (rig, site) = links_rig("links_gone").await;
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_text(USER, "en", &site.url("/stated.html"));
    let offer = offer(&rig).await;
    site.take_down();
    rig.telegram.push_callback(USER, "en", &confirm_data(&offer), 2);
    let failure = told(&rig, "❌ Failed").await;
    assert!(failure.contains("private, removed or unavailable"), "{failure}");
    assert!(failure.contains("2 coins refunded"), "{failure}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(rig.balance().await, 100);
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}

#[tokio::test]
async fn deleting_my_data_forgets_the_links_and_the_audio_read_from_them() {
    let (rig, site) = links_rig("links_forget").await;
    let pool = workers(&rig.services, "w1").await;
    rig.telegram.push_text(USER, "en", &site.url("/episode.mp3"));
    offer(&rig).await;
    let user_id = rig.scalar(&format!("SELECT id FROM users WHERE telegram_id = {USER}")).await;
    assert_eq!(rig.scalar("SELECT count(*) FROM links WHERE audio_key IS NOT NULL").await, 1, "read and kept");
    rig.telegram.push_text(USER, "en", "/deletemydata");
    eventually("confirm", WAIT, || rig.last_message_starting(USER, "⚠️ Delete all").is_some()).await;
    rig.telegram.push_callback(USER, "en", "forget:yes", 2);
    eventually("deleted", WAIT, || rig.last_message_starting(USER, "✅ Your data is deleted").is_some()).await;
    assert_eq!(rig.scalar("SELECT count(*) FROM links").await, 0);
    let left = rig.services.blob.delete_prefix(&format!("audio/{user_id}/")).await.unwrap();
    assert_eq!(left, 0, "the audio read from the link was deleted with the rest");
    pool.stop(None);
    rig.stop();
    common::assert_ledger(&rig.services).await;
}
