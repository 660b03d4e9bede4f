//! wrk (Debian's package) as the load generator for HTTP benchmarks: C, so
//! the load costs little of the two cores it shares with the server, and its
//! latency percentiles are HdrHistogram's. Each request is prepared in
//! advance (FAL callbacks are signed beforehand), handed to wrk's Lua as a
//! file of one request a line, and sent in turn.

use std::process::Command;

/// One prepared request: its headers and body (JSON, no newlines or tabs).
pub type Prepared = (Vec<(String, String)>, Vec<u8>);

#[derive(Debug, Clone)]
pub struct Load {
    pub requests: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub not_2xx: u64,
    pub errors: u64,
}

const SCRIPT: &str = r#"
local threads = {}
local next_id = 0
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end
local requests = {}
local at = 0
function init(args)
  local file, count, n = args[1], tonumber(args[2]), 0
  for line in io.lines(file) do
    if n % count == tid then
      local headers, fields = {}, {}
      for field in string.gmatch(line, "[^\t]+") do table.insert(fields, field) end
      local body = table.remove(fields)
      for _, h in ipairs(fields) do
        local k, v = string.match(h, "^([^=]+)=(.*)$")
        headers[k] = v
      end
      headers["Content-Type"] = "application/json"
      table.insert(requests, wrk.format("POST", nil, headers, body))
    end
    n = n + 1
  end
end
function request()
  at = at % #requests + 1
  return requests[at]
end
"#;

fn millis(value: &str) -> f64 {
    let value = value.trim();
    let number = |suffix: &str| value.strip_suffix(suffix).and_then(|v| v.parse::<f64>().ok());
    number("us")
        .map(|v| v / 1000.0)
        .or_else(|| number("ms"))
        .or_else(|| number("s").map(|v| v * 1000.0))
        .unwrap_or(f64::NAN)
}

/// `connections` connections over two threads for `seconds`, cycling through `requests`.
pub fn run(url: &str, requests: &[Prepared], connections: usize, seconds: u32) -> Load {
    let dir = std::env::temp_dir().join(format!("aisha-wrk-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let (script, lines) = (dir.join("load.lua"), dir.join("requests.tsv"));
    std::fs::write(&script, SCRIPT).unwrap();
    let mut text = String::new();
    for (headers, body) in requests {
        for (k, v) in headers {
            text.push_str(&format!("{k}={v}\t"));
        }
        text.push_str(std::str::from_utf8(body).expect("a JSON body"));
        text.push('\n');
    }
    std::fs::write(&lines, text).unwrap();
    let threads = 2.min(connections).max(1);
    let output = Command::new("wrk")
        .args([
            "-t",
            &threads.to_string(),
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(&script)
        .arg(url)
        .arg("--")
        .arg(&lines)
        .arg(threads.to_string())
        .output()
        .expect("wrk runs (apt-get install wrk)");
    let _ = std::fs::remove_dir_all(&dir);
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "wrk failed: {out}{}", String::from_utf8_lossy(&output.stderr));
    let field = |prefix: &str| out.lines().find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_owned()));
    let percentile = |p: &str| field(&format!("{p}%")).map(|v| millis(&v)).unwrap_or(f64::NAN);
    let requests = out
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ").and_then(|(n, _)| n.trim().parse().ok()))
        .unwrap_or(0);
    let errors = field("Socket errors:")
        .map(|v| {
            v.split(',').filter_map(|part| part.split_whitespace().last().and_then(|n| n.parse::<u64>().ok())).sum()
        })
        .unwrap_or(0);
    Load {
        requests,
        per_second: field("Requests/sec:").and_then(|v| v.parse().ok()).unwrap_or(f64::NAN),
        p50_ms: percentile("50"),
        p90_ms: percentile("90"),
        p99_ms: percentile("99"),
        not_2xx: field("Non-2xx or 3xx responses:").and_then(|v| v.parse().ok()).unwrap_or(0),
        errors,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn wrk_units_are_read_as_milliseconds() {
        assert_eq!(super::millis("750.00us"), 0.75);
        assert_eq!(super::millis("1.50ms"), 1.5);
        assert_eq!(super::millis("2.00s"), 2000.0);
    }
}
