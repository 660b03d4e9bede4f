//! Generated input at the parsers that read what a user controls: the
//! Ogg/Opus walk (a voice note's length sets its price, and a walked note
//! goes to the API as it is), the link guard (any address, in every form
//! IPv6 can carry an IPv4 in), and inline buttons' `callback_data`. No
//! panic, and each holds its promise on every case. Seeded:
//! `AISHA_FUZZ_SEED=N` replays a run, `AISHA_FUZZ_CASES=N` sets the cases
//! per parser.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;

use aisha_actors::chat::callback::DigestKind;
use aisha_actors::chat::callback::{Callback, MenuItem, MAX_POSITION};
use aisha_actors::clients::links::Guard;
use aisha_actors::transcriber::ogg;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A seeded generator, its seed told so a failure can be replayed.
fn generator(parser: &str) -> StdRng {
    let seed: u64 = std::env::var("AISHA_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("{parser}: fuzz seed {seed} (AISHA_FUZZ_SEED={seed} replays this run)");
    StdRng::seed_from_u64(seed)
}

fn cases(default: usize) -> usize {
    std::env::var("AISHA_FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

// ---- Ogg/Opus ----

/// The pages of an Ogg stream, each as its bytes.
fn pages(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut pages = Vec::new();
    while data.len() >= 27 && &data[..4] == b"OggS" {
        let segments = data[26] as usize;
        let body: usize = data[27..27 + segments].iter().map(|&n| n as usize).sum();
        let length = 27 + segments + body;
        pages.push(data[..length].to_vec());
        data = &data[length..];
    }
    pages
}

/// Ogg's CRC-32 (polynomial 0x04c11db7, not reflected), over the page with
/// its checksum field zeroed: written here apart from the walk's own.
fn seal(page: &mut [u8]) {
    page[22..26].fill(0);
    let mut crc = 0u32;
    for &byte in page.iter() {
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04c1_1db7 } else { crc << 1 };
        }
    }
    page[22..26].copy_from_slice(&crc.to_le_bytes());
}

/// One to four changes a client could make, every page then sealed again
/// (but for one change in four): packets' bytes and TOCs, lacing values,
/// granule positions, flags, pages dropped, doubled or cut short.
fn mutate(rng: &mut StdRng, original: &[Vec<u8>]) -> Vec<u8> {
    let mut pages = original.to_vec();
    for _ in 0..rng.gen_range(1..=4) {
        let at = rng.gen_range(0..pages.len());
        let body_start = 27 + pages[at].get(26).map_or(0, |&n| n as usize);
        if pages[at].len() < body_start.max(27) {
            continue; // cut short already
        }
        match rng.gen_range(0..7) {
            0 if pages[at].len() > body_start => {
                let i = rng.gen_range(body_start..pages[at].len());
                pages[at][i] = rng.gen();
            }
            1 if pages[at][26] > 0 => {
                let i = 27 + rng.gen_range(0..pages[at][26] as usize);
                pages[at][i] = rng.gen();
            }
            2 => pages[at][6..14].copy_from_slice(&rng.gen::<i64>().to_le_bytes()),
            3 => pages[at][5] = rng.gen_range(0..8),
            4 if pages.len() > 2 => {
                pages.remove(at);
            }
            5 => {
                let copy = pages[at].clone();
                pages.insert(at, copy);
            }
            _ => {
                let cut = rng.gen_range(0..pages[at].len());
                pages[at].truncate(cut);
            }
        }
    }
    let keep_bad_checksums = rng.gen_ratio(1, 4);
    let mut bytes = Vec::new();
    for mut page in pages {
        if page.len() >= 27 && !keep_bad_checksums {
            seal(&mut page);
        }
        bytes.extend(page);
    }
    bytes
}

/// Seconds ffmpeg decodes of `data`: what an API's decoder would hear.
fn decoded_seconds(data: &[u8], scratch: &std::path::Path) -> f64 {
    std::fs::write(scratch, data).unwrap();
    let out = Command::new("ffmpeg")
        .args(["-v", "quiet", "-i"])
        .arg(scratch)
        .args(["-f", "s16le", "-ac", "1", "-ar", "48000", "-"])
        .output()
        .unwrap();
    out.stdout.len() as f64 / 2.0 / 48_000.0
}

#[test]
fn the_ogg_walk_never_counts_less_than_a_decoder_hears() {
    let mut rng = generator("ogg walk");
    let note = aisha_testkit::audio::voice_note("A voice note, changed a little every time, then walked.");
    let original = pages(&note);
    assert!(original.len() >= 3, "a real note has a head, tags and audio pages");
    let scratch = std::env::temp_dir().join(format!("aisha-ogg-fuzz-{}.ogg", std::process::id()));
    let (mut walked, mut decoded) = (0, 0);
    for case in 0..cases(2_000) {
        let data = mutate(&mut rng, &original);
        let Some(counted) = ogg::walk(&data[..]) else { continue };
        walked += 1;
        assert!(counted.heard.is_finite() && counted.heard >= 0.0, "case {case}: {counted:?}");
        // A decoder is slower than the walk: every eighth walked case.
        if walked % 8 == 1 {
            decoded += 1;
            let heard = decoded_seconds(&data, &scratch);
            assert!(heard <= counted.heard + 0.001, "case {case}: the walk counted {counted:?}, ffmpeg heard {heard}");
        }
    }
    let _ = std::fs::remove_file(scratch);
    println!(
        "fuzz figure: ogg walk vouched for {walked} changed notes, {decoded} of them decoded: never more than counted"
    );
}

// ---- the link guard ----

/// An IPv4 address, mostly from the ranges a forged link aims at.
fn aimed_v4(rng: &mut StdRng) -> Ipv4Addr {
    let [a, b, c, d]: [u8; 4] = rng.gen();
    match rng.gen_range(0..8) {
        0 => Ipv4Addr::new(10, b, c, d),
        1 => Ipv4Addr::new(127, b, c, d),
        2 => Ipv4Addr::new(169, 254, c, d),
        3 => Ipv4Addr::new(172, 16 | (b & 15), c, d),
        4 => Ipv4Addr::new(192, 168, c, d),
        5 => Ipv4Addr::new(100, 64 | (b & 63), c, d),
        6 => Ipv4Addr::new(168, 63, 129, 16),
        _ => Ipv4Addr::new(a, b, c, d),
    }
}

/// `v4` inside an IPv6 address, in each form that carries one.
fn carried(rng: &mut StdRng, v4: Ipv4Addr) -> [Ipv6Addr; 7] {
    let [high, low] = [(u32::from(v4) >> 16) as u16, u32::from(v4) as u16];
    let r: [u16; 5] = rng.gen();
    [
        Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, high, low),                // mapped
        Ipv6Addr::new(0, 0, 0, 0, 0, 0, high, low),                     // compatible
        Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, high, low),                // translated (SIIT)
        Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, high, low),             // NAT64
        Ipv6Addr::new(0x64, 0xff9b, 1, r[0], r[1], r[2], high, low),    // NAT64, local use
        Ipv6Addr::new(0x2002, high, low, r[0], r[1], r[2], r[3], r[4]), // 6to4
        Ipv6Addr::new(0x2001, 0, r[0], r[1], r[2], r[3], !high, !low),  // Teredo
    ]
}

#[test]
fn no_form_of_a_refused_ipv4_address_gets_past_the_guard() {
    let mut rng = generator("guard");
    let guard = Guard::default();
    let mut refused = 0;
    for case in 0..cases(20_000) {
        let v4 = aimed_v4(&mut rng);
        if guard.permits(IpAddr::V4(v4)) {
            continue;
        }
        refused += 1;
        for v6 in carried(&mut rng, v4) {
            assert!(!guard.permits(IpAddr::V6(v6)), "case {case}: {v6} carries the refused {v4}");
        }
    }
    for case in 0..cases(20_000) {
        let v6 = Ipv6Addr::from(rng.gen::<u128>());
        let first = v6.segments()[0];
        let local = (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80 || (first & 0xffc0) == 0xfec0;
        let forced = Ipv6Addr::from((u128::from(v6) & !(0xffc0u128 << 112)) | (0xfe80u128 << 112));
        assert!(!guard.permits(IpAddr::V6(forced)), "case {case}: link-local {forced}");
        if local {
            assert!(!guard.permits(IpAddr::V6(v6)), "case {case}: {v6}");
        }
    }
    println!("fuzz figure: guard refused every IPv6 form of {refused} refused IPv4 addresses");
}

// ---- callback_data ----

/// Pieces buttons' data is made of, and what a forger adds to them.
const TOKENS: [&str; 32] = [
    "menu",
    "avatar",
    "new",
    "train",
    "cancel",
    "main",
    "gender",
    "man",
    "regen",
    "fav",
    "del",
    "gal",
    "aspect",
    "history",
    "transcript",
    "digest",
    "summary",
    "spoken",
    "subs",
    "srt",
    "speakers",
    "on",
    "who",
    "yes",
    "link",
    "forget",
    "topup",
    "-1",
    "0",
    "9223372036854775807",
    "99999999999999999999",
    "é",
];

fn forged_data(rng: &mut StdRng) -> String {
    let mut data = String::new();
    for i in 0..rng.gen_range(1..=5) {
        if i > 0 {
            data.push(if rng.gen_ratio(9, 10) { ':' } else { rng.gen() });
        }
        match rng.gen_range(0..3) {
            0 => data.push_str(&rng.gen_range(-5i64..2_000_000).to_string()),
            1 => data.push(rng.gen()),
            _ => data.push_str(TOKENS[rng.gen_range(0..TOKENS.len())]),
        }
    }
    // Telegram delivers at most 64 bytes.
    let mut end = data.len().min(64);
    while !data.is_char_boundary(end) {
        end -= 1;
    }
    data.truncate(end);
    data
}

/// Every kind of button, with ids and positions anywhere in their ranges.
fn made(rng: &mut StdRng) -> Callback<'static> {
    let id = if rng.gen_ratio(1, 4) { i64::MAX } else { rng.gen_range(1..=i64::MAX) };
    let position = rng.gen_range(0..=MAX_POSITION);
    let digest = DigestKind::ALL[rng.gen_range(0..3)];
    let menu = [MenuItem::Imagine, MenuItem::Gallery, MenuItem::TopUp, MenuItem::Help][rng.gen_range(0..4)];
    match rng.gen_range(0..24) {
        0 => Callback::Menu(menu),
        1 => Callback::AvatarNew,
        2 => Callback::AvatarTrain(id),
        3 => Callback::AvatarCancel(id),
        4 => Callback::AvatarMain(id),
        5 => Callback::AvatarStatus(id),
        6 => Callback::Gender(["man", "woman"][rng.gen_range(0..2)]),
        7 => Callback::Regenerate(id),
        8 => Callback::Favourite(id),
        9 => Callback::Delete(id),
        10 => Callback::Gallery(position),
        11 => Callback::Aspect(["square_hd", "landscape_16_9", "portrait_16_9"][rng.gen_range(0..3)]),
        12 => Callback::History(position),
        13 => Callback::Transcript(id),
        14 => Callback::Digest(digest, id),
        15 => Callback::TopUp(rng.gen_range(0..100)),
        16 => Callback::Spoken(["auto", "en", "ru", "kk"][rng.gen_range(0..4)]),
        17 => Callback::Subtitles(["srt", "vtt", "txt", "none"][rng.gen_range(0..4)], id),
        18 => Callback::Forget(rng.gen()),
        19 => Callback::Speakers(rng.gen()),
        20 => Callback::WhoSaidWhat(id, rng.gen()),
        _ => Callback::Link(id),
    }
}

#[test]
fn callback_data_reads_back_as_made_and_forged_data_as_nothing_else() {
    let mut rng = generator("callback_data");
    for case in 0..cases(100_000) {
        let button = made(&mut rng);
        let data = button.to_string();
        assert!(data.len() <= 64, "case {case}: {data:?} is over Telegram's 64 bytes");
        assert_eq!(Callback::parse(&data), Some(button), "case {case}: {data:?}");
    }
    let mut ours = 0;
    for case in 0..cases(100_000) {
        let data = forged_data(&mut rng);
        let Some(read) = Callback::parse(&data) else { continue };
        ours += 1;
        // Whatever was accepted is a button we could have made, no longer than what came.
        let again = read.to_string();
        assert_eq!(Callback::parse(&again), Some(read), "case {case}: {data:?}");
        assert!(again.len() <= data.len(), "case {case}: {data:?} read as {again:?}");
    }
    println!("fuzz figure: callback_data: every made button read back; {ours} forged strings read as buttons of ours");
}
