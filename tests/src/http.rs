//! A tiny HTTP/1.1 client over `std::net::TcpStream`: keep-alive connections, Content-Length and chunked bodies
//! both ways, and the raw pieces (head, chunks, part of a body) that tests of requests in flight need.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

/// A response read by [`Connection`].
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, in the order received, names as sent.
    pub headers: Vec<(String, String)>,
    /// The whole body (chunks joined).
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON; fails the test, showing the body, when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The body as JSON, or an error when it is not JSON.
    pub fn try_json(&self) -> std::io::Result<Value> {
        serde_json::from_slice(&self.body).map_err(std::io::Error::other)
    }

    /// The value of the header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A keep-alive HTTP/1.1 connection (5 s to connect, 60 s to read).
#[derive(Debug)]
pub struct Connection {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Connection {
    /// Connects to `addr`.
    pub fn open(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    /// Sends a request with `headers`, `Content-Length` and `body`, and reads the whole response.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        let length = body.len().to_string();
        let mut all = headers.to_vec();
        all.push(("Content-Length", &length));
        self.send_head(method, path, &all)?;
        self.writer.write_all(body)?;
        let (status, headers) = self.read_head()?;
        let body = self.read_body(&headers)?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// Sends `body` (none: an empty body) as `Content-Type: application/json`, with `Authorization: Bearer KEY`
    /// when a `key` is given.
    pub fn send_json(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> std::io::Result<Response> {
        let bearer = key.map(|k| format!("Bearer {k}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(bearer) = &bearer {
            headers.push(("Authorization", bearer));
        }
        let body = body.map(Value::to_string).unwrap_or_default();
        self.request(method, path, &headers, body.as_bytes())
    }

    /// POSTs `body` as JSON (see [`Connection::send_json`]).
    pub fn post_json(
        &mut self,
        path: &str,
        body: &Value,
        key: Option<&str>,
    ) -> std::io::Result<Response> {
        self.send_json("POST", path, Some(body), key)
    }

    /// The status and JSON body of [`Connection::send_json`]; an answer that is not JSON is an error, as is a
    /// closed connection.
    pub fn json(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> std::io::Result<(u16, Value)> {
        let response = self.send_json(method, path, body, key)?;
        Ok((response.status, response.try_json()?))
    }

    /// A GET without headers of its own.
    pub fn get(&mut self, path: &str) -> std::io::Result<Response> {
        self.request("GET", path, &[], b"")
    }

    /// Sends the request line and `headers` (nothing of the body): for bodies sent in pieces.
    pub fn send_head(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> std::io::Result<()> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.writer.write_all(head.as_bytes())
    }

    /// Sends raw bytes: a part of a body announced by [`Connection::send_head`].
    pub fn send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Sends one chunk of a chunked body; an empty one ends the body.
    pub fn write_chunk(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.writer
            .write_all(format!("{:x}\r\n", data.len()).as_bytes())?;
        self.writer.write_all(data)?;
        self.writer.write_all(b"\r\n")
    }

    fn read_line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }

    /// Reads a response's status line and headers.
    pub fn read_head(&mut self) -> std::io::Result<(u16, Vec<(String, String)>)> {
        let status_line = self.read_line()?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let line = self.read_line()?;
            if line.is_empty() {
                return Ok((status, headers));
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
    }

    /// Reads the body of a response whose head was `headers`: `Content-Length` bytes, else chunks to the last.
    pub fn read_body(&mut self, headers: &[(String, String)]) -> std::io::Result<Vec<u8>> {
        if let Some(length) = header(headers, "content-length") {
            let mut body = vec![0; length.parse().map_err(std::io::Error::other)?];
            self.reader.read_exact(&mut body)?;
            return Ok(body);
        }
        let mut body = Vec::new();
        while let Some(chunk) = self.read_chunk()? {
            body.extend(chunk);
        }
        Ok(body)
    }

    /// One chunk of a chunked body; `None` at the last chunk.
    pub fn read_chunk(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let size_line = self.read_line()?;
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| std::io::Error::other(format!("bad chunk size {size_line:?}: {e}")))?;
        let mut chunk = vec![0; size];
        self.reader.read_exact(&mut chunk)?;
        self.read_line()?;
        Ok((size > 0).then_some(chunk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Accepts one connection, reads one request head and answers `answer`; returns the head it read.
    fn answer_once(answer: &'static [u8]) -> (SocketAddr, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                head.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            (&stream).write_all(answer).unwrap();
            head
        });
        (addr, server)
    }

    #[test]
    fn a_chunked_answer_is_read_whole() {
        let (addr, server) = answer_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Request-Id: 7\r\n\r\n\
              4\r\n{\"a\"\r\n3;x=y\r\n:1}\r\n0\r\n\r\n",
        );
        let response = Connection::open(addr).unwrap().get("/x").unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.header("x-request-id"), Some("7"));
        assert_eq!(response.json(), serde_json::json!({"a": 1}));
        let head = server.join().unwrap();
        assert!(head.starts_with("GET /x HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("Content-Length: 0\r\n"), "{head}");
    }

    #[test]
    fn json_requests_carry_the_key_and_a_body_that_is_not_json_is_an_error() {
        let (addr, server) =
            answer_once(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy");
        let outcome = Connection::open(addr).unwrap().json(
            "POST",
            "/v1/feedback",
            Some(&serde_json::json!({"id": "k"})),
            Some("secret"),
        );
        assert!(outcome.is_err(), "{outcome:?}");
        let head = server.join().unwrap();
        assert!(head.contains("Authorization: Bearer secret\r\n"), "{head}");
        assert!(
            head.contains("Content-Type: application/json\r\n"),
            "{head}"
        );
        assert!(head.contains("Content-Length: 10\r\n"), "{head}");
    }
}
