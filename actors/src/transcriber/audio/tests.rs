//! Cutting plans, ffmpeg's guards, and the caps that hold whatever a file
//! does (timestamps that lie, a format that changes every second).

use super::*;

const MIN10: Duration = Duration::from_secs(600);
const WINDOW: Duration = Duration::from_secs(30);
const OVERLAP: Duration = Duration::from_secs(1);

#[test]
fn short_audio_is_one_chunk() {
    assert_eq!(plan(42.0, &[], MIN10, WINDOW, OVERLAP), vec![Chunk { start: 0.0, end: 42.0 }]);
}

#[test]
fn cuts_land_in_the_nearest_silence() {
    // Ideal cuts at 500 and 1000; silences centred at 496, 1011 and 1100.5.
    let silences = [(495.0, 497.0), (1010.0, 1012.0), (1100.0, 1101.0)];
    let chunks = plan(1500.0, &silences, MIN10, WINDOW, OVERLAP);
    assert_eq!(
        chunks,
        vec![
            Chunk { start: 0.0, end: 496.0 },
            Chunk { start: 496.0, end: 1011.0 },
            Chunk { start: 1011.0, end: 1500.0 }
        ]
    );
    assert!(chunks.iter().all(|c| c.end - c.start <= 600.0));
}

#[test]
fn without_silence_cuts_are_fixed_and_overlap() {
    let chunks = plan(1500.0, &[], MIN10, WINDOW, OVERLAP);
    assert_eq!(chunks.len(), 3);
    assert_eq!(chunks[0], Chunk { start: 0.0, end: 500.0 });
    assert_eq!(chunks[1], Chunk { start: 499.0, end: 1000.0 });
    assert_eq!(chunks[2], Chunk { start: 999.0, end: 1500.0 });
}

#[test]
fn chunks_cover_the_whole_recording_in_order() {
    let silences: Vec<(f64, f64)> = (0..100).map(|i| (i as f64 * 53.0 + 50.0, i as f64 * 53.0 + 53.0)).collect();
    let chunks = plan(3600.0, &silences, MIN10, WINDOW, OVERLAP);
    assert_eq!(chunks.first().unwrap().start, 0.0);
    assert_eq!(chunks.last().unwrap().end, 3600.0);
    for pair in chunks.windows(2) {
        assert!(pair[1].start <= pair[0].end && pair[1].start > pair[0].start);
    }
    assert!(chunks.iter().all(|c| c.end - c.start <= 600.0), "{chunks:?}");
}

fn scratch(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("aisha-audio-{}-{name}", std::process::id()))
}

#[tokio::test]
async fn a_playlist_named_like_audio_is_refused_not_followed() {
    let path = scratch("playlist.mp3");
    std::fs::write(
        &path,
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nhttp://169.254.169.254/latest/meta-data\n#EXT-X-ENDLIST\n",
    )
    .unwrap();
    let refused = probe(&path, &mut Spent::default()).await;
    let _ = std::fs::remove_file(&path);
    assert!(matches!(refused, Err(AudioError::Failed { .. } | AudioError::NoAudio)), "{refused:?}");
}

#[tokio::test]
async fn a_run_over_its_limit_is_killed() {
    // A FIFO nobody writes to: ffprobe would wait on it forever.
    let path = scratch("stuck.ogg");
    let _ = std::fs::remove_file(&path);
    assert!(std::process::Command::new("mkfifo").arg(&path).status().unwrap().success());
    let args = ["-v", "error", "-show_format", path.to_str().unwrap()];
    let started = Instant::now();
    let result = run("ffprobe", &args, Duration::from_millis(500), &mut Spent::default()).await;
    let _ = std::fs::remove_file(&path);
    assert!(matches!(result, Err(AudioError::TimedOut { .. })), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn the_decoded_length_is_the_last_progress_report() {
    let progress =
        "out_time_us=1000000\nprogress=continue\nout_time_us=1202373500\nout_time=00:20:02.373500\nprogress=end\n";
    assert_eq!(decoded_seconds(progress), Some(1202.3735));
    assert_eq!(decoded_seconds("out_time_us=N/A\nprogress=end\n"), None);
    assert_eq!(decoded_seconds("out_time_us=0\n"), None, "nothing decoded");
}

#[test]
fn silencedetect_output_parses() {
    let stderr = "[silencedetect @ 0x1] silence_start: 50.02\n[silencedetect @ 0x1] silence_end: 53.01 | silence_duration: 2.99\n\
                  [silencedetect @ 0x1] silence_start: -0.01\n[silencedetect @ 0x1] silence_end: 1.5 | silence_duration: 1.5\n";
    assert_eq!(parse_silences(stderr), vec![(50.02, 53.01), (0.0, 1.5)]);
}

/// [`aisha_testkit::audio::switching_formats`] of `seconds`, in a file of its own.
fn switching_every_second(seconds: u32) -> std::path::PathBuf {
    let path = scratch("switching.mkv");
    std::fs::write(&path, aisha_testkit::audio::switching_formats(seconds)).unwrap();
    path
}

#[tokio::test]
async fn a_stream_whose_format_changes_midway_is_unreadable_not_measured_short() {
    let path = switching_every_second(10);
    let scanned = scan(&path, Duration::from_millis(400), &mut Spent::default()).await;
    // Before: a new filter graph every second restarted the sample count,
    // and 10 s measured as the last one (1.04 s).
    assert!(scanned.is_err(), "10 s switching formats measured as {scanned:?}");
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn the_encoders_cap_holds_on_a_stream_whose_format_changes_midway() {
    let (path, out) = (switching_every_second(10), scratch("switching-chunk.ogg"));
    let planned = Chunk { start: 0.0, end: 1.05 };
    let encoded = encode(&path, planned, &out, &mut Spent::default()).await;
    let heard = std::fs::read(&out).ok().and_then(|data| crate::transcriber::ogg::walk(&data[..])).map(|c| c.heard);
    let _ = (std::fs::remove_file(path), std::fs::remove_file(out));
    // Before: atrim restarted with each graph and 10.3 s came out of a 1.05 s chunk.
    assert!(encoded.is_err(), "encoded; it holds {heard:?} s");
    println!("audio figure: a chunk planned at 1.05 s of a file switching formats every second is refused (it held 10.3 s before)");
}

#[tokio::test]
async fn a_stream_of_one_format_is_measured_and_cut_as_before() {
    let path = scratch("steady.mp3");
    let status = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=f=440:r=44100:d=10", "-c:a", "libmp3lame"])
        .arg(&path)
        .status();
    assert!(status.unwrap().success());
    let scanned = scan(&path, Duration::from_millis(400), &mut Spent::default()).await.unwrap();
    assert!((scanned.seconds - 10.0).abs() < 0.1, "{scanned:?}");
    let out = scratch("steady-chunk.ogg");
    encode(&path, Chunk { start: 2.0, end: 5.0 }, &out, &mut Spent::default()).await.unwrap();
    let heard = crate::transcriber::ogg::walk(&std::fs::read(&out).unwrap()[..]).unwrap().heard;
    let _ = (std::fs::remove_file(path), std::fs::remove_file(out));
    assert!((heard - 3.0).abs() < 0.1 && heard <= most_heard(3.0), "{heard}");
}
