//! A Hugging Face Hub on loopback for tests: it answers the Hub's `/{repo}/resolve/{revision}/{file}`
//! route as huggingface.co does for an LFS file (an ETag of the file's SHA-256, `x-repo-commit`, and
//! byte ranges), so the real download code runs offline. It can also misbehave as a real network does.
#![allow(dead_code, clippy::unwrap_used)] // test support: not every test uses every mode

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

/// How the fake Hub answers a download.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    /// As the Hub does.
    Normal,
    /// The first download of the file's bytes stops halfway and the connection closes.
    DropHalfway,
    /// A 200 HTML page for every request (a captive portal, a wrong `HF_ENDPOINT`).
    HtmlPage,
    /// The Hub's headers, but other bytes than the ETag says.
    WrongBytes,
}

pub struct FakeHub {
    pub url: String,
    /// `"<path> <range>"` of every request, in order.
    pub requests: Arc<Mutex<Vec<String>>>,
}

/// Serves `bytes` as `/{repo}/resolve/main/{file}`; every other path is a 404.
pub fn serve(repo: &str, file: &str, bytes: Vec<u8>, behaviour: Behaviour) -> FakeHub {
    serve_files(repo, vec![(file.to_string(), bytes)], behaviour)
}

/// Serves each `(file, bytes)` as `/{repo}/resolve/main/{file}`; every other path is a 404.
pub fn serve_files(repo: &str, files: Vec<(String, Vec<u8>)>, behaviour: Behaviour) -> FakeHub {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let log = requests.clone();
    let routes: Vec<(String, Vec<u8>, String)> = files
        .into_iter()
        .map(|(file, bytes)| {
            let etag = hex::encode(Sha256::digest(&bytes));
            (format!("/{repo}/resolve/main/{file}"), bytes, etag)
        })
        .collect();
    std::thread::spawn(move || {
        let mut dropped = false;
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let Some((path, range)) = read_request(&stream) else {
                continue;
            };
            log.lock()
                .unwrap()
                .push(format!("{path} {}", range.clone().unwrap_or_default()));
            let drop_now = behaviour == Behaviour::DropHalfway
                && !dropped
                && range.as_deref().is_some_and(|r| r != "bytes=0-0");
            dropped |= drop_now;
            let served = routes.iter().find(|(route, _, _)| *route == path);
            answer(
                stream,
                range.as_deref(),
                served.map(|(_, bytes, etag)| (bytes.as_slice(), etag.as_str())),
                behaviour,
                drop_now,
            );
        }
    });
    FakeHub { url, requests }
}

fn read_request(stream: &TcpStream) -> Option<(String, Option<String>)> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut range = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("range") {
                range = Some(value.trim().to_string());
            }
        }
    }
    Some((path, range))
}

/// Answers one request: `served` is the file at its path, with its ETag (`None`: a 404).
fn answer(
    mut stream: TcpStream,
    range: Option<&str>,
    served: Option<(&[u8], &str)>,
    behaviour: Behaviour,
    drop_now: bool,
) {
    if behaviour == Behaviour::HtmlPage {
        let page = b"<!doctype html><html><body>Please sign in to continue</body></html>";
        let _ = write!(stream, "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", page.len());
        let _ = stream.write_all(page);
        return;
    }
    let Some((bytes, etag)) = served else {
        let body = b"Entry not found";
        let _ = write!(stream, "HTTP/1.1 404 Not Found\r\nx-error-code: EntryNotFound\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
        let _ = stream.write_all(body);
        return;
    };
    let served: Vec<u8> = if behaviour == Behaviour::WrongBytes {
        bytes.iter().map(|b| b ^ 0x5a).collect()
    } else {
        bytes.to_vec()
    };
    let size = served.len();
    let (start, end) = match range
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
    {
        Some((a, b)) => (
            a.parse::<usize>().unwrap_or(0),
            b.parse::<usize>().map(|b| b + 1).unwrap_or(size).min(size),
        ),
        None => (0, size),
    };
    let body = &served[start..end];
    let _ = write!(
        stream,
        "HTTP/1.1 206 Partial Content\r\netag: \"{etag}\"\r\nx-repo-commit: 0123456789abcdef0123456789abcdef01234567\r\ncontent-range: bytes {start}-{}/{size}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        end.saturating_sub(1),
        body.len()
    );
    let sent = if drop_now {
        &body[..body.len() / 2]
    } else {
        body
    };
    let _ = stream.write_all(sent);
    let _ = stream.flush();
}
